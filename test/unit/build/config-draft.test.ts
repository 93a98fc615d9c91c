import { describe, expect, it } from 'vitest';
import { expansionEnv } from '../../../src/build/args.js';
import { ConfigDraft } from '../../../src/build/config-draft.js';
import { Stage } from '../../../src/build/state.js';
import { addEmptyHistory, emptyImage, setEnvEntry, updateContainerConfig, type Image } from '../../../src/image/index.js';
import { MemoryBlobStore } from '../../helpers/memory-blobs.js';
import { TEST_PLATFORM } from './harness.js';

function base(env: string[]): Image {
  const image = updateContainerConfig(emptyImage(TEST_PLATFORM), (c) => ({ ...c, Env: env, Labels: { keep: 'me' } }));
  return addEmptyHistory(image, { created_by: 'base' });
}

describe('ConfigDraft', () => {
  it('edits in place to the image the immutable mutators give, Env duplicates and bare names included', () => {
    const start = base(['PATH=/bin', 'DUP=1', 'BARE', 'DUP=2']);
    const draft = new ConfigDraft(start);
    const args = new Map([
      ['A', 'arg'],
      ['DUP', 'from-arg'],
    ]);
    expect(draft.expansionEnv(args)).toEqual(expansionEnv(args, start.config.config?.Env));

    let expected = start;
    const edits: [string, string][] = [
      ['NEW', 'x'],
      ['DUP', 'changed'],
      ['BARE', 'now'],
      ['NEW', 'y'],
      ['A', 'env'],
    ];
    for (const [k, v] of edits) {
      draft.setEnv(k, v);
      draft.addHistory({ created_by: `ENV ${k}=${v}` });
      expected = updateContainerConfig(expected, (c) => ({ ...c, Env: setEnvEntry(c.Env ?? [], k, v) }));
      expected = addEmptyHistory(expected, { created_by: `ENV ${k}=${v}` });
      // Expansion sees the last entry of a key (expansionEnv's rule), kept in step without a rebuild.
      expect(new Map(draft.expansionEnv(args))).toEqual(expansionEnv(args, expected.config.config?.Env));
    }
    draft.map('Labels').added = 'yes';
    expected = updateContainerConfig(expected, (c) => ({ ...c, Labels: { ...c.Labels, added: 'yes' } }));
    expect(draft.apply()).toEqual(expected);
    // The base value is untouched.
    expect(start.config.config?.Env).toEqual(['PATH=/bin', 'DUP=1', 'BARE', 'DUP=2']);
    expect(start.config.config?.Labels).toEqual({ keep: 'me' });
  });

  it('an ARG changes expansion unless the Env names it; a draft with no edit gives the base value itself', () => {
    const start = base(['E=env']);
    const draft = new ConfigDraft(start);
    const args = new Map<string, string>();
    draft.expansionEnv(args);
    draft.setArg('E', 'arg');
    draft.setArg('F', 'arg');
    expect(draft.expansionEnv(args).get('E')).toBe('env');
    expect(draft.expansionEnv(args).get('F')).toBe('arg');
    draft.setArg('F', undefined);
    expect(draft.expansionEnv(args).has('F')).toBe(false);
    expect(draft.apply()).toBe(start);
  });

  it('a stage applies pending edits when its image is read', () => {
    const stage = new Stage(base([]), {
      reader: new MemoryBlobStore(),
      args: new Map(),
      shell: [],
      entrypointSet: false,
      cmdSet: false,
      file: 'Dockerfile',
      escapeToken: '\\',
    });
    stage.metadata().setEnv('K', 'v');
    expect(stage.image.config.config?.Env).toEqual(['K=v']);
    const read = stage.image;
    expect(stage.image).toBe(read);
  });
});
