/** Package ecosystems the scanner knows, as purl types name them. */
export type PackageType = 'deb' | 'apk' | 'npm' | 'pypi' | 'golang';

/** One package found in an image's filesystem. */
export interface SbomPackage {
  type: PackageType;
  name: string;
  version: string;
  purl: string;
  /** The license as the package declares it (an SPDX expression when it is one), if it does. */
  license?: string | undefined;
  /** The files (absolute image paths) the package's record was read from: its database or metadata files. */
  locations: string[];
}

/** What a scan found: the packages (sorted by purl, then location) and one warning per kind of problem. */
export interface SbomScan {
  packages: SbomPackage[];
  /** The image's distribution (`/etc/os-release`), when it names one. */
  distro?: { id: string; versionId?: string | undefined; prettyName?: string | undefined } | undefined;
  warnings: string[];
}

/** Kinds of trouble a scan reports once each, however often it meets them. */
export type ScanProblem =
  | 'dpkg-status'
  | 'dpkg-too-many'
  | 'apk-installed'
  | 'npm-package-json'
  | 'npm-lockfile'
  | 'python-metadata'
  | 'go-buildinfo'
  | 'os-release'
  | 'oversized';

/** Collects warnings, keeping the first of each kind. */
export class ScanWarnings {
  private readonly seen = new Map<ScanProblem, string>();
  private readonly counts = new Map<ScanProblem, number>();

  warn(kind: ScanProblem, message: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    if (!this.seen.has(kind)) this.seen.set(kind, message);
  }

  list(): string[] {
    return [...this.seen].map(([kind, message]) => {
      const n = this.counts.get(kind) ?? 1;
      return n > 1 ? `${message} (and ${n - 1} more like it)` : message;
    });
  }
}
