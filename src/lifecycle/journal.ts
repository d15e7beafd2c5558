import type { ProfileConfig } from '../profile/store.js';
import type { CreatedResource, Journal } from '../providers/types.js';

/**
 * What one start made, recorded as it is made: the provider's resources, and whether the profile's
 * stored config was written (with what it held before). A failed start undoes exactly this.
 */
export class RunJournal implements Journal {
  private readonly made: CreatedResource[] = [];
  /** Set once this run wrote the profile config: what was stored before (undefined: nothing). */
  profileBefore?: { config: ProfileConfig | undefined };

  get entries(): readonly CreatedResource[] {
    return this.made;
  }

  record(resource: CreatedResource): void {
    this.made.push(resource);
  }

  forget(resource: CreatedResource): void {
    const i = this.made.findIndex((r) => r.kind === resource.kind && r.name === resource.name);
    if (i >= 0) this.made.splice(i, 1);
  }
}
