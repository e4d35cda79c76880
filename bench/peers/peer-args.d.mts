export interface PeerArgs {
  port: number;
  host: string;
  node: string;
}

export function peerArgs(): PeerArgs;
