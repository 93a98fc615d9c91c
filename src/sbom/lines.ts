/** Longest line kept whole; the rest of a longer line is dropped (and reported by the caller). */
export const MAX_LINE = 64 * 1024;

export interface LineStats {
  truncated: number;
}

/**
 * The lines of a byte stream (LF or CRLF), decoded as UTF-8, without holding more than one line and
 * one chunk. Lines longer than MAX_LINE are cut there; `stats.truncated` counts them.
 */
export async function* streamLines(content: AsyncIterable<Buffer>, stats: LineStats = { truncated: 0 }): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let cut = false;
  const take = (): string => {
    const line = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLength);
    pending = [];
    pendingLength = 0;
    if (cut) stats.truncated++;
    cut = false;
    const text = line.toString('utf8');
    return text.endsWith('\r') ? text.slice(0, -1) : text;
  };
  for await (const chunk of content) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      if (end > start) {
        const room = MAX_LINE - pendingLength;
        if (room > 0) {
          const piece = chunk.subarray(start, Math.min(end, start + room));
          pending.push(piece);
          pendingLength += piece.length;
        }
        if (end - start > room) cut = true;
      }
      if (nl < 0) break;
      yield take();
      start = nl + 1;
    }
    // Chunks may be reused by the producer once handed on: copy what is kept across them.
    if (pending.length > 0) {
      const kept = Buffer.concat(pending, pendingLength);
      pending = [kept];
    }
  }
  if (pendingLength > 0 || cut) yield take();
}

/** Reads a whole small file, or undefined when it is over `limit` bytes (the rest is left unread). */
export async function readSmall(content: AsyncIterable<Buffer>, limit: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of content) {
    length += chunk.length;
    if (length > limit) return undefined;
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts, length);
}
