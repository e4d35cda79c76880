import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.js';

/** Partitions of a namespace when neither `?partitions=` nor the option says otherwise. */
export const DEFAULT_PARTITIONS = 16;
const MAX_PARTITIONS = 1024;

/**
 * Which partition holds a channel. Every client of a namespace must use the same count:
 * the count is part of the queue names (partitionKey), so a different count is a
 * different layout, never a channel split across two logs of one layout.
 */
export function partitionOf(channel: string, partitions: number): number {
  return createHash('sha256').update(channel).digest().readUInt32BE(0) % partitions;
}

/** The name part of a partition's queues; `~` never occurs in a channel's routing key, so the two cannot collide. */
export function partitionKey(partitions: number, index: number): string {
  return `~p${partitions}-${index}`;
}

export function parsePartitions(raw: string | number | undefined | null): number {
  if (raw === undefined || raw === null) return DEFAULT_PARTITIONS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARTITIONS) {
    throw new ConfigError(
      `amqp bus: partitions=${raw} must be a whole number from 1 to ${MAX_PARTITIONS}, e.g. ?partitions=16`,
    );
  }
  return n;
}
