import { buildInspectReport, type InspectReport } from '../inspect/index.js';
import type { StrataContext } from './context.js';
import type { RegistryIo } from './append.js';
import { openImage } from './sources.js';
import { parseImageLocation } from './transport.js';

export interface InspectResult {
  report: InspectReport;
  raw: { manifest: Buffer; config: Buffer; index?: Buffer };
}

export async function inspectImage(source: string, ctx: StrataContext, io: RegistryIo = {}): Promise<InspectResult> {
  const opened = await openImage(parseImageLocation(source), ctx, io);
  try {
    const report = buildInspectReport({
      name: opened.description,
      top: opened.top.descriptor,
      index: opened.index,
      manifestDescriptor: opened.manifest.descriptor,
      manifest: opened.manifest.value,
      config: opened.config.value,
    });
    const raw: InspectResult['raw'] = { manifest: opened.manifest.bytes, config: opened.config.bytes };
    if (opened.index) raw.index = opened.top.bytes;
    return { report, raw };
  } finally {
    await opened.close();
  }
}
