import { pack, type Header } from 'tar-stream';

export interface TarSpec {
  name: string;
  type?: Header['type'];
  linkname?: string;
  content?: Buffer | string;
}

/** Builds a tar in memory with tar-stream, writing names exactly as given (hostile ones included). */
export async function makeTar(specs: TarSpec[]): Promise<Buffer> {
  const packer = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of packer) chunks.push(chunk as Buffer);
  })();
  for (const spec of specs) {
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: spec.name,
        type: spec.type ?? 'file',
        mode: spec.type === 'directory' ? 0o755 : 0o644,
        mtime: new Date(0),
        ...(spec.linkname === undefined ? {} : { linkname: spec.linkname }),
      };
      packer.entry(header, Buffer.from(spec.content ?? ''), (error) => (error ? reject(error) : resolve()));
    });
  }
  packer.finalize();
  await collected;
  return Buffer.concat(chunks);
}
