export type { PackageType, SbomPackage, SbomScan } from './types.js';
export { scanFileTree, scanImageLayers, scanWhileWriting, type ScanImageOptions, type TreeFile, type WrittenLayerScan } from './scan.js';
export { purl } from './purl.js';
export { spdxDocument, spdxTime, type SbomSubject } from './spdx.js';
export { cyclonedxDocument } from './cyclonedx.js';
