import { describe, expect, it } from 'vitest';
import { OutageLog } from '../../src/session/outage-log.js';

describe('OutageLog', () => {
  const rig = () => {
    const lines: Array<{ level: string; obj: object; msg: string }> = [];
    const at =
      (level: string) =>
      (obj: object, msg = '') =>
        lines.push({ level, obj, msg });
    let now = 1_000_000;
    const log = new OutageLog({
      logger: { info: at('info'), warn: at('warn'), error: at('error') },
      dependency: 'store redis redis://cache:6379/0',
      paused: 'session end handling',
      now: () => now,
    });
    return { lines, log, advance: (ms: number) => (now += ms) };
  };

  it('logs once when an outage starts, at most once a minute while it lasts with a count, once when it ends', () => {
    const { lines, log, advance } = rig();
    log.succeeded(); // nothing to say while the store answers
    for (let i = 0; i < 4 * 59; i++) {
      log.failed(new Error('claimEnded failed: connect ECONNREFUSED'));
      advance(250);
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe('error');
    expect(lines[0]?.msg).toBe(
      'store redis redis://cache:6379/0 unreachable: claimEnded failed: connect ECONNREFUSED; session end handling paused',
    );
    for (let i = 0; i < 8; i++) {
      log.failed(new Error('claimEnded failed: connect ECONNREFUSED'));
      advance(250);
    }
    expect(lines).toHaveLength(2);
    expect(lines[1]?.msg).toMatch(
      /still unreachable after 60 s: .*; 240 failures since the last line; session end handling paused$/,
    );
    expect(lines[1]?.obj).toMatchObject({ failures: 240 });
    log.succeeded();
    log.succeeded();
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ level: 'info', obj: { failures: 244 } });
    expect(lines[2]?.msg).toBe(
      'store redis redis://cache:6379/0 reachable again after 61 s (244 failures); session end handling resumed',
    );
    // A new outage starts its own story.
    log.failed('again');
    expect(lines).toHaveLength(4);
    expect(lines[3]?.msg).toContain('unreachable: again;');
  });
});
