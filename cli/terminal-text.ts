/**
 * Text that came from input (Dockerfile lines, file and image names) goes to a terminal only with its
 * control characters escaped: an ESC or BEL in a Dockerfile must not retitle the window or clear the
 * screen when an error quotes it. Newlines and tabs stay (messages span lines); the rest of C0, DEL
 * and C1 become `\xNN`, and any other non-printing code point `\u{…}`; so do the bytes of file names
 * that are not UTF-8.
 */
export function escapeControls(text: string): string {
  // A file name byte that is not UTF-8 travels as a lone surrogate (src/fsname): shown as the byte it is.
  text = text.replace(/(?<![\ud800-\udbff])[\udc80-\udcff]/g, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`);
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * Any run of non-space characters longer than `max` (a path near PATH_MAX, a name of kilobytes) is
 * cut in the middle, keeping both ends, which are what tell paths apart.
 */
export function shortenLongWords(text: string, max = 240): string {
  const keep = Math.floor((max - 20) / 2);
  return text.replace(/\S+/g, (word) => (word.length <= max ? word : `${word.slice(0, keep)}…[${word.length - 2 * keep} more]…${word.slice(-keep)}`));
}

/** An error message or hint as it is shown: controls escaped, giant words shortened. */
export function forTerminal(text: string): string {
  return shortenLongWords(escapeControls(text));
}
