/**
 * What one file of one layer says about packages: the unit a layer scan records, keyed by the file's
 * path. Plain data, so a layer's findings can be kept by its digest and merged again without reading it.
 */
export interface DebRecord {
  name: string;
  version: string;
  arch?: string | undefined;
  source?: string | undefined;
}

export interface ApkRecord {
  name: string;
  version: string;
  arch?: string | undefined;
  license?: string | undefined;
  origin?: string | undefined;
}

export interface NpmRecord {
  name: string;
  version: string;
  license?: string | undefined;
}

export interface GoModule {
  path: string;
  version: string;
}

export type Finding =
  /** The path was written but says nothing (a malformed or replaced file): it hides what lower layers said. */
  | { kind: 'none' }
  | { kind: 'os'; id: string; versionId?: string | undefined; prettyName?: string | undefined }
  | { kind: 'dpkg'; packages: DebRecord[] }
  /** `usr/share/doc/PKG/copyright` in the machine-readable format: its License fields. */
  | { kind: 'deb-copyright'; licenses: string[] }
  | { kind: 'apk'; packages: ApkRecord[] }
  | { kind: 'npm'; pkg: NpmRecord }
  /** A package-lock.json: its project (path '') and the packages it installs under node_modules/, by their install path. */
  | { kind: 'npm-lock'; packages: Array<NpmRecord & { path: string }> }
  | { kind: 'python'; name: string; version: string; license?: string | undefined }
  | { kind: 'go'; goVersion: string; main: GoModule; deps: GoModule[] };

/** The findings of one layer: files found (path → finding), and what it deletes from the layers below. */
export interface LayerFindings {
  found: Array<[string, Finding]>;
  /** Paths a whiteout deletes (with everything below them). */
  whiteouts: string[];
  /** Directories an opaque marker empties. */
  opaques: string[];
  /** Warnings met reading the layer, to repeat when the findings are reused. */
  problems: Array<[string, string]>;
}
