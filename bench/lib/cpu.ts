import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

let ticksPerSecond: number | undefined;

/**
 * CPU time (user + system, ms) a process has used so far, from /proc; undefined off Linux.
 * CPU per request is the number that survives a busy shared machine: req/s does not.
 */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces); utime, stime are 14, 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

export interface RedisCounters {
  cpuMs: number;
  /** Every command executed, including those a Lua script runs. */
  commands: number;
}

export async function redisCounters(client: Redis): Promise<RedisCounters> {
  const info = await client.info();
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return {
    cpuMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000,
    commands: field('total_commands_processed'),
  };
}
