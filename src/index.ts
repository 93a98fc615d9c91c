/**
 * strata's public API. The CLI imports only this file. Modules are re-exported here; the wiring of
 * real dependencies (stores, clock, registry access) lives in src/api/.
 */
export * from './errors/index.js';
export * from './digest/index.js';
export * from './oci/index.js';
export * from './ref/index.js';
export * from './registry/index.js';
export * from './registry/credentials/index.js';
export * from './dockerfile/index.js';
export * from './store/index.js';
export * from './layer/index.js';
export * from './image/index.js';
export * from './output/index.js';
export * from './inspect/index.js';
export * from './diff/index.js';
export * from './context/index.js';
export * from './exec/index.js';
export * from './build/index.js';
export * from './api/index.js';
