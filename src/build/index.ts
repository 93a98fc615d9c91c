export * from './session.js';
export * from './events.js';
export { runBuild } from './engine.js';
export { planBuild, type BuildPlan, type StagePlan, type BaseSource } from './plan.js';
export {
  stepCacheKey,
  stepDefinitionKey,
  imageContentKey,
  filesystemKey,
  LocalStepCache,
  outcomeTime,
  type StepOutcome,
  type KeyComponents,
  type ExpiredStep,
} from './cache.js';
export { CacheExplainer, type CacheMiss, type CacheChange, type FileList } from './cache-explain.js';
export { parseChmod } from './chmod.js';
export { resolveOwnership, parsePasswd, parseGroup } from './users.js';
export type { StepCache } from './cache.js';
export { LayeredStepCache, type ImportedStepCache, type StepCacheHit, type CacheTtl } from './cache-layered.js';
