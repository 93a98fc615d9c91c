export * from './session.js';
export * from './events.js';
export { runBuild } from './engine.js';
export { planBuild, type BuildPlan, type StagePlan, type BaseSource } from './plan.js';
export { stepCacheKey, stepDefinitionKey, imageContentKey, LocalStepCache, type StepOutcome } from './cache.js';
export { parseChmod } from './chmod.js';
export { resolveOwnership, parsePasswd, parseGroup } from './users.js';
export { type StepCache } from './cache.js';
export { LayeredStepCache, type ImportedStepCache, type StepCacheHit } from './cache-layered.js';
