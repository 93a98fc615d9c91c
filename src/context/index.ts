export type { ContextEntry, ContextEntryType, ResolvedSource, SourceMatch, SourceRoot } from './types.js';
export { openBuildContext, openNamedContextRoot, sourceRootForDirectory, type OpenBuildContextOptions } from './open.js';
export { resolveCopySources, scopeSourcePath, type ResolveCopySourcesOptions } from './resolve.js';
export { listSourceTree, statSource, type ListSourceTreeOptions } from './list.js';
export { hashSources, hashSourcesFromCache, digestRegularFile, type HashSourcesOptions } from './hash.js';
export { ContextStatCache, statCacheFile } from './stat-cache.js';
export { compareContextPaths } from './order.js';
export { compileComponentPattern as compileCopyWildcard, hasWildcard as copySourceHasWildcard } from './glob.js';
