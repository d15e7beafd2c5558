import type { Readable } from 'node:stream';
import type { ImageBuilder, ImageInfo, ImageStore } from '../types.js';

/**
 * The image store of the container engine that builds node images for the qemu driver (Docker,
 * else podman): connected on first use, so listing or stopping VMs never needs an engine, and a
 * failed connection is tried again next time.
 */
export class BuildEngineImages implements ImageStore {
  private store?: Promise<ImageStore>;

  constructor(
    readonly engine: { name: string; cli: string },
    private readonly connect: () => Promise<ImageStore>,
  ) {}

  private get s(): Promise<ImageStore> {
    if (!this.store) {
      const store = this.connect();
      this.store = store;
      store.catch(() => {
        if (this.store === store) this.store = undefined;
      });
    }
    return this.store;
  }

  info(ref: string): Promise<ImageInfo | undefined> {
    return this.s.then((s) => s.info(ref));
  }
  list(reference: string): Promise<ImageInfo[]> {
    return this.s.then((s) => s.list(reference));
  }
  remove(ref: string): Promise<'removed' | 'absent'> {
    return this.s.then((s) => s.remove(ref));
  }
  load(archive: Readable): Promise<void> {
    return this.s.then((s) => s.load(archive));
  }
  importRootfs(rootfs: Readable, ref: string, changes: string[]): Promise<void> {
    return this.s.then((s) => s.importRootfs(rootfs, ref, changes));
  }
  pull(ref: string, progress?: (detail: string) => void): Promise<void> {
    return this.s.then((s) => s.pull(ref, progress));
  }
  save(refs: string | string[]): Promise<Readable> {
    return this.s.then((s) => s.save(refs));
  }
  builder(opts: Parameters<ImageStore['builder']>[0]): Promise<ImageBuilder> {
    return this.s.then((s) => s.builder(opts));
  }
}
