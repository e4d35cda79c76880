/**
 * The publish time a benchmark payload carries: the number after the last `"t":` in the
 * frame (`{"id":n,"t":<ms>}` as it reaches the client inside each system's envelope),
 * or NaN when there is none. Read straight from the bytes: this runs once per delivery
 * in the load generators, where a string per frame and a search of the whole frame
 * would cost more than the rest of the client's work.
 */
const T_MARK = Buffer.from('"t":');
const QUOTE = 0x22;
const T = 0x74;
const COLON = 0x3a;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** The timestamp ends a payload: only the envelope's closing brackets follow it. */
const TAIL_SCAN = 48;

export function payloadTime(data: Uint8Array): number {
  const at = markNearEnd(data);
  if (at < 0) return Number.NaN;
  const end = data.length;
  let i = at + 4;
  let whole = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = data[i] as number;
    if (c < ZERO || c > NINE) break;
    whole = whole * 10 + (c - ZERO);
    digits++;
  }
  if (digits === 0 || digits > 15) return slowParse(data, at);
  if (data[i] !== DOT) return isNumberEnd(data[i]) ? whole : slowParse(data, at);
  let fraction = 0;
  let scale = 1;
  for (i++; i < end && scale < 1e9; i++) {
    const c = data[i] as number;
    if (c < ZERO || c > NINE) break;
    fraction = fraction * 10 + (c - ZERO);
    scale *= 10;
  }
  if (scale === 1 || !isNumberEnd(data[i])) return slowParse(data, at);
  return whole + fraction / scale;
}

/** Position of the last `"t":`, looked for in the frame's tail first. */
function markNearEnd(data: Uint8Array): number {
  const stop = Math.max(0, data.length - TAIL_SCAN);
  for (let i = data.length - 4; i >= stop; i--) {
    if (data[i] === QUOTE && data[i + 1] === T && data[i + 2] === QUOTE && data[i + 3] === COLON) return i;
  }
  return stop === 0 ? -1 : Buffer.from(data.buffer, data.byteOffset, data.length).lastIndexOf(T_MARK);
}

/** What may follow a JSON number: anything but more number syntax. */
function isNumberEnd(c: number | undefined): boolean {
  return (
    c === undefined || !((c >= ZERO && c <= NINE) || c === DOT || c === 0x65 || c === 0x45 || c === 0x2d || c === 0x2b)
  );
}

/** Exponents, signs, very long fractions: rare, left to parseFloat. */
function slowParse(data: Uint8Array, at: number): number {
  const text = Buffer.from(data.buffer, data.byteOffset, data.length).toString(
    'latin1',
    at + 4,
    Math.min(data.length, at + 40),
  );
  const t = Number.parseFloat(text);
  return Number.isFinite(t) ? t : Number.NaN;
}
