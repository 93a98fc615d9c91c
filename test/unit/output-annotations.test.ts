import { describe, expect, it } from 'vitest';
import { annotationsFor, parseAnnotation } from '../../src/output/annotations.js';

describe('--annotation', () => {
  it('parses buildx forms', () => {
    expect(parseAnnotation('org.opencontainers.image.title=app')).toEqual({ targets: ['manifest'], key: 'org.opencontainers.image.title', value: 'app' });
    expect(parseAnnotation('index:a=b=c')).toEqual({ targets: ['index'], platform: undefined, key: 'a', value: 'b=c' });
    expect(parseAnnotation('manifest,index:k=')).toEqual({ targets: ['manifest', 'index'], platform: undefined, key: 'k', value: '' });
    expect(parseAnnotation('manifest-descriptor[linux/arm64]:k=v')).toEqual({
      targets: ['manifest-descriptor'],
      platform: 'linux/arm64',
      key: 'k',
      value: 'v',
    });
    expect(parseAnnotation('manifest[linux/arm64/v8]:k=v').platform).toBe('linux/arm64');
    expect(() => parseAnnotation('novalue')).toThrow(/KEY=VALUE/);
    expect(() => parseAnnotation('bogus:k=v')).toThrow(/unknown type "bogus"/);
    expect(() => parseAnnotation('index[linux/amd64]:k=v')).toThrow(/platform applies to manifest/);
  });

  it('picks annotations per target and platform, later ones winning', () => {
    const specs = ['a=1', 'manifest[linux/arm64]:b=2', 'manifest:a=3', 'index:c=4'].map(parseAnnotation);
    expect(annotationsFor(specs, 'manifest', { os: 'linux', architecture: 'amd64' })).toEqual({ a: '3' });
    expect(annotationsFor(specs, 'manifest', { os: 'linux', architecture: 'arm64' })).toEqual({ a: '3', b: '2' });
    expect(annotationsFor(specs, 'index')).toEqual({ c: '4' });
    expect(annotationsFor(specs, 'index-descriptor')).toBeUndefined();
  });
});
