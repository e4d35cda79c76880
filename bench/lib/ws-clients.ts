/**
 * A load-generator process for the realtime scenarios (`node --import tsx bench/lib/ws-clients.ts`,
 * driven over IPC by bench/lib/ws-fleet.ts): holds its share of WebSocket clients, counts
 * the messages they receive and records publish→deliver latency from the `"t":` timestamp
 * every benchmark payload ends with (same machine, same clock). Every client is the same
 * minimal WebSocket client (./lean-websocket.ts) whatever the server, so the client cost is
 * the same for every server compared, and small: a fan-out client's work is one small frame
 * per read, and a heavier client would take the CPU the servers being measured need.
 */
import { Histogram, nowMs } from './histogram.js';
import { LeanWebSocket } from './lean-websocket.js';
import { payloadTime } from './payload-time.js';
import type { ClientTarget, FleetCommand, FleetReply, Protocol } from './ws-fleet.js';

const hist = new Histogram();
let delivered = 0;
let reported = -1;
let closedUnexpectedly = 0;
const sockets = new Set<LeanWebSocket>();
let stopping = false;

function reply(message: FleetReply): void {
  process.send?.(message);
}

/** Counts a payload frame and records its latency; other frames (hello, subscribed, pings) are ignored. */
function onPayload(data: Buffer): void {
  const t = payloadTime(data);
  if (Number.isNaN(t)) return;
  delivered++;
  hist.record(nowMs() - t);
}

/**
 * Resolves once the socket is a member of the benchmark's room: shoal answers `subscribed`
 * for it, the Socket.IO peer emits `ready` after joining, the raw peer sends `ready`.
 */
function open(protocol: Protocol, target: ClientTarget, room: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // The servers measured are trusted: their text frames are not checked for UTF-8 (as ws's skipUTF8Validation).
    const ws = new LeanWebSocket(target.url, { headers: target.headers ?? {}, skipUtf8Validation: true });
    let ready = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`not ready within ${timeoutMs} ms: ${target.url}`));
    }, timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      if (ready) return;
      if (err) {
        ws.terminate();
        reject(err);
      } else {
        ready = true;
        sockets.add(ws);
        resolve();
      }
    };
    const subscribedMark = `"type":"subscribed","channel":${JSON.stringify(room)}`;
    ws.onmessage = (raw) => {
      if (ready) {
        // Engine.IO heartbeat: the server pings ("2"), the client must answer ("3").
        if (protocol === 'socketio' && raw.length === 1 && raw[0] === 0x32) ws.sendText('3');
        else onPayload(raw);
        return;
      }
      const text = raw.toString();
      if (protocol === 'shoal' && text.includes(subscribedMark)) done();
      else if (protocol === 'raw' && text === '{"type":"ready"}') done();
      else if (protocol === 'socketio') {
        if (text.startsWith('0{')) ws.sendText('40');
        else if (text === '2') ws.sendText('3');
        else if (text.startsWith('42["ready"')) done();
      } else if (protocol === 'shoal' && text.includes('"type":"error"')) done(new Error(`gateway refused: ${text}`));
    };
    ws.onerror = (err) => {
      if (!ready) done(new Error(`${err.message} from ${target.url}`));
    };
    ws.onclose = () => {
      // Sockets the driver dropped were already removed: only the server's closes count.
      if (sockets.delete(ws) && !stopping) closedUnexpectedly++;
    };
  });
}

async function openAll(cmd: Extract<FleetCommand, { cmd: 'open' }>): Promise<void> {
  let next = 0;
  let ok = 0;
  const errors: string[] = [];
  const worker = async () => {
    while (next < cmd.targets.length) {
      const target = cmd.targets[next++] as ClientTarget;
      try {
        await open(cmd.protocol, target, cmd.room, cmd.timeoutMs);
        ok++;
      } catch (err) {
        if (errors.length < 5) errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency) }, worker));
  reply({ type: 'opened', ok, failed: cmd.targets.length - ok, errors });
}

process.on('message', (cmd: FleetCommand) => {
  switch (cmd.cmd) {
    case 'open':
      void openAll(cmd);
      return;
    case 'reset':
      hist.reset();
      reply({ type: 'reset' });
      return;
    case 'snapshot':
      reply({
        type: 'snapshot',
        delivered,
        histogram: hist.toData(),
        open: sockets.size,
        closedUnexpectedly,
      });
      return;
    case 'drop':
      // Between systems: every socket goes, the process and its counters start over.
      stopping = true;
      for (const ws of sockets) ws.terminate();
      sockets.clear();
      stopping = false;
      delivered = 0;
      reported = -1;
      closedUnexpectedly = 0;
      hist.reset();
      reply({ type: 'dropped' });
      return;
    case 'close':
      stopping = true;
      for (const ws of sockets) ws.terminate();
      reply({ type: 'closed' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
});

// Progress for the driver's flow control: how many payloads arrived so far.
setInterval(() => {
  if (delivered === reported) return;
  reported = delivered;
  reply({ type: 'progress', delivered });
}, 20);

process.on('disconnect', () => process.exit(0));
reply({ type: 'started' });
