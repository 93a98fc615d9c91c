export { MergedTree, openLayerEntries, type TreeNode, type ReadTreeOptions } from './tree.js';
export { compareTrees, changedFields, summarize, type FileChange, type FileField, type FileSummary } from './files.js';
export {
  diffImages,
  configChanges,
  type DiffSide,
  type DiffOptions,
  type ImageDiff,
  type PlatformDiff,
  type LayerComparison,
  type LayerSide,
  type FieldChange,
} from './image-diff.js';
export { describeReasons } from './reasons.js';
export { flattenImage, type FlattenOptions, type FlattenStats } from './flatten.js';
export { renderDiffText } from './text.js';
