export * from './output-spec.js';
export * from './cache-artifact.js';
export * from './remote-context.js';
export * from './secrets.js';
export * from './build-options.js';
export * from './build-job.js';
