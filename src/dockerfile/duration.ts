/** Go's time.ParseDuration, in nanoseconds. Returns undefined for text Go would reject. */
const UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  const re = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/u;
  while (s !== '') {
    const m = re.exec(s);
    if (m === null) return undefined;
    const whole = m[1] as string;
    const frac = m[2];
    if (whole === '' && (frac === undefined || frac === '')) return undefined;
    const unit = UNITS[m[3] as string];
    if (unit === undefined) return undefined;
    const value = Number(`${whole === '' ? '0' : whole}.${frac ?? '0'}`);
    total += value * unit;
    s = s.slice(m[0].length);
  }
  if (!Number.isFinite(total) || total > 9.223372036854776e18) return undefined;
  return sign * Math.round(total);
}
