/**
 * The paths one layer has put in place, so that its whiteouts and opaque markers hide only what the layers below
 * contributed (OCI layer.md: whiteouts apply to lower layers only), whatever order the entries come in.
 */
export class LayerWrites {
  private readonly written = new Set<string>();
  /** Every proper ancestor of a written path, so "is anything below X ours?" is one lookup. */
  private readonly ancestors = new Set<string>();

  add(rel: string): void {
    this.written.add(rel);
    let at = rel;
    while (at !== '') {
      const slash = at.lastIndexOf('/');
      at = slash === -1 ? '' : at.slice(0, slash);
      if (this.ancestors.has(at)) break;
      this.ancestors.add(at);
    }
  }

  /** This layer wrote exactly this path. */
  has(rel: string): boolean {
    return this.written.has(rel);
  }

  /** This layer wrote something strictly below this path. */
  hasBelow(rel: string): boolean {
    return this.ancestors.has(rel);
  }

  clear(): void {
    this.written.clear();
    this.ancestors.clear();
  }
}
