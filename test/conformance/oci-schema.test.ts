import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, describe, expect, it } from 'vitest';
import { appendImage, buildImage, isDigest, parseManifestOrIndex, type StrataContext } from '../../src/internals.js';
import { CaseCounter, corpusPath } from './corpus.js';

// Ajv is the judge here, not strata code: the draft-04 build (the OCI schemas are draft-04) plus
// formats. Both are CommonJS; only the few calls used are typed.
interface AjvValidate {
  (doc: unknown): boolean;
  errors?: Array<{ instancePath: string; message?: string }> | null;
}
interface Ajv {
  addSchema(schema: object, key: string): Ajv;
  getSchema(key: string): AjvValidate | undefined;
}
const require = createRequire(import.meta.url);
const AjvClass = (require('ajv-draft-04') as { default: new (options: object) => Ajv }).default;
const addFormats = (require('ajv-formats') as { default: (ajv: Ajv) => void }).default;

const SCHEMA_DIR = corpusPath('image-spec-schema');
const VALIDATORS: Record<string, string> = {
  'application/vnd.oci.descriptor.v1+json': 'content-descriptor.json',
  'application/vnd.oci.image.layout.v1+json': 'image-layout-schema.json',
  'application/vnd.oci.layout.header.v1+json': 'image-layout-schema.json',
  'application/vnd.oci.image.manifest.v1+json': 'image-manifest-schema.json',
  'application/vnd.oci.image.index.v1+json': 'image-index-schema.json',
  'application/vnd.oci.image.config.v1+json': 'config-schema.json',
};

/** The schemas name each other by file name; nested `id`s would re-base those references, so they go. */
function stripIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripIds);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'id' && k !== '$schema')
        .map(([k, v]) => [k, stripIds(v)]),
    );
  }
  return value;
}

async function loadAjv(): Promise<Ajv> {
  const ajv = new AjvClass({ allErrors: true, strict: false });
  addFormats(ajv);
  for (const file of (await readdir(SCHEMA_DIR)).filter((f) => f.endsWith('.json'))) {
    ajv.addSchema(stripIds(JSON.parse(await readFile(join(SCHEMA_DIR, file), 'utf8'))) as object, file);
  }
  return ajv;
}

/** The Go validator's checks beyond the schema: registered digests must be well formed; Env is KEY=VALUE. */
function goSideErrors(doc: unknown): string[] {
  const errors: string[] = [];
  const visit = (v: unknown, key?: string): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x, key);
      return;
    }
    if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) visit(x, k);
      return;
    }
    if (key === 'digest' && typeof v === 'string' && /^(sha256|sha512):/.test(v) && !isDigest(v)) errors.push(`bad digest ${v}`);
    // Go decodes `data` into []byte, which takes only padded standard base64.
    if (key === 'data' && typeof v === 'string' && !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v)) errors.push('bad base64 data');
  };
  visit(doc);
  const env = (doc as { config?: { Env?: unknown } })?.config?.Env;
  if (Array.isArray(env)) for (const e of env) if (typeof e !== 'string' || !/^[^=]+=.*$/.test(e)) errors.push(`bad Env ${String(e)}`);
  return errors;
}

function validate(ajv: Ajv, mediaType: string, doc: unknown): string[] {
  const schema = VALIDATORS[mediaType];
  if (!schema) return [`no schema for ${mediaType}`];
  const fn = ajv.getSchema(schema)!;
  const ok = fn(doc);
  return [...(ok ? [] : (fn.errors ?? []).map((e) => `${e.instancePath} ${e.message}`)), ...goSideErrors(doc)];
}

const counters: CaseCounter[] = [];
afterAll(() => {
  for (const c of counters) console.log(`${c.corpus}: ${c.passed} passed, ${c.failed.length} failed`);
});

describe('OCI image-spec JSON schemas', () => {
  it("the validator agrees with image-spec's own fixtures", async () => {
    const ajv = await loadAjv();
    const counter = new CaseCounter('oci-schema fixtures');
    counters.push(counter);
    for (const file of ['manifest.json', 'config.json', 'descriptor.json', 'imageindex.json', 'imagelayout.json']) {
      const fixture = JSON.parse(await readFile(join(SCHEMA_DIR, 'tests', file), 'utf8')) as {
        validator: string;
        cases: Array<{ index: number; fail: boolean; comment: string; document: string }>;
      };
      for (const c of fixture.cases) {
        counter.check(`${file}#${c.index}`, () => {
          let doc: unknown;
          let errors: string[];
          try {
            doc = JSON.parse(c.document);
            errors = validate(ajv, fixture.validator, doc);
          } catch (e) {
            errors = [`unparseable: ${(e as Error).message}`];
          }
          expect(errors.length > 0, `${c.comment}: ${errors.join('; ')}`).toBe(c.fail);
        });
      }
    }
    const examples = JSON.parse(await readFile(join(SCHEMA_DIR, 'spec-examples', 'examples.json'), 'utf8')) as {
      examples: Array<{ mediatype: string; body: string; id: string }>;
    };
    for (const ex of examples.examples) {
      counter.check(`example ${ex.id}`, () => expect(validate(ajv, ex.mediatype, JSON.parse(ex.body))).toEqual([]));
    }
    expect(counter.unexpected()).toEqual([]);
  });

  it('every manifest, config and index strata writes validates', async () => {
    const ajv = await loadAjv();
    const counter = new CaseCounter('oci-schema strata output');
    counters.push(counter);
    const work = await mkdtemp(join(tmpdir(), 'strata-schema-'));
    try {
      const tree = join(work, 'tree');
      await mkdir(join(tree, 'etc'), { recursive: true });
      await writeFile(join(tree, 'etc', 'hello'), 'hi\n');
      const ctx: StrataContext = { storeRoot: join(work, 'store'), now: () => new Date('2024-01-02T03:04:05Z') };
      const layout = join(work, 'layout');
      await appendImage({ layers: [{ path: tree }], env: ['A=1'], labels: ['k=v'], expose: ['80'], cmd: 'echo hi', outputs: [`oci:${layout}:one`] }, ctx);
      await appendImage({ base: `oci:${layout}:one`, layers: [{ path: tree, dest: '/opt' }], entrypoint: '["/bin/x"]', outputs: [`oci:${layout}:two`] }, ctx);
      await appendImage({ base: `oci:${layout}:one`, layers: [], user: 'nobody', outputs: [`oci:${layout}:meta`], compression: 'none' }, ctx);
      // Intended difference: a scratch image with only config changes has no layers, as `docker build`
      // makes for `FROM scratch` + `CMD`. The spec's prose says layers SHOULD (not MUST) have an entry;
      // the schema's minItems: 1 is stricter, so that one image is checked apart.
      await appendImage({ layers: [], user: 'nobody', outputs: [`oci:${join(work, 'empty')}:none`] }, ctx);
      const emptyIndex = JSON.parse(await readFile(join(work, 'empty', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      const emptyManifest = JSON.parse(await readFile(join(work, 'empty', 'blobs', 'sha256', emptyIndex.manifests[0]!.digest.slice(7)), 'utf8')) as {
        layers: unknown[];
      };
      expect(emptyManifest.layers).toEqual([]);
      expect(validate(ajv, 'application/vnd.oci.image.manifest.v1+json', emptyManifest)).toEqual(['/layers must NOT have fewer than 1 items']);
      // A multi-stage, multi-platform Dockerfile build too: its index, manifests and configs.
      const ctxDir = join(work, 'ctx');
      await mkdir(ctxDir, { recursive: true });
      await writeFile(join(ctxDir, 'app.txt'), 'app\n');
      await writeFile(
        join(ctxDir, 'Dockerfile'),
        'FROM scratch AS base\nCOPY app.txt /app/\nENV A=1\nFROM base\nWORKDIR /srv\nLABEL x=y\nEXPOSE 80\nHEALTHCHECK CMD ["/bin/true"]\nCMD ["/app/run"]\n',
      );
      await buildImage(
        { contextDir: ctxDir, platform: 'linux/amd64,linux/arm64', tags: ['built:1'], outputs: [`type=oci,dest=${join(work, 'built')},tar=false`] },
        ctx,
      );
      const checkConfig = async (dir: string, d: { digest: string; mediaType: string }): Promise<void> => {
        const config = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', d.digest.slice(7)), 'utf8')) as unknown;
        counter.check(`config ${d.digest}`, () => expect(validate(ajv, d.mediaType, config)).toEqual([]));
      };
      for (const dir of [layout, join(work, 'store', 'oci'), join(work, 'built')]) {
        const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as unknown;
        counter.check(`${dir}/index.json`, () => expect(validate(ajv, 'application/vnd.oci.image.index.v1+json', index)).toEqual([]));
        const header = JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')) as unknown;
        counter.check(`${dir}/oci-layout`, () => expect(validate(ajv, 'application/vnd.oci.layout.header.v1+json', header)).toEqual([]));
        for (const m of (index as { manifests: Array<{ digest: string; mediaType: string }> }).manifests) {
          const bytes = await readFile(join(dir, 'blobs', 'sha256', m.digest.slice(7)));
          const parsed = parseManifestOrIndex(bytes, m.digest, m.mediaType);
          counter.check(`manifest ${m.digest}`, () => expect(validate(ajv, m.mediaType, JSON.parse(bytes.toString())), bytes.toString()).toEqual([]));
          const manifests = parsed.kind === 'index' ? parsed.index.manifests : [];
          for (const child of manifests) {
            const childBytes = await readFile(join(dir, 'blobs', 'sha256', child.digest.slice(7)));
            counter.check(`manifest ${child.digest}`, () => expect(validate(ajv, child.mediaType, JSON.parse(childBytes.toString()))).toEqual([]));
            const childParsed = parseManifestOrIndex(childBytes, child.digest, child.mediaType);
            if (childParsed.kind === 'manifest') await checkConfig(dir, childParsed.manifest.config);
          }
          if (parsed.kind === 'manifest') await checkConfig(dir, parsed.manifest.config);
        }
      }
      expect(counter.unexpected()).toEqual([]);
      expect(counter.passed).toBeGreaterThanOrEqual(10);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
