import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MinilabError, STREAM_STALL_MS, formatMs, inactivityDeadline, withTimeout } from '../../errors.js';
import type { ImageBuilder, ImageInfo, ImageStore } from '../types.js';
import { statusOf, type DockerClient, type DockerError } from './client.js';
import type { Containers } from './containers.js';
import type { Exec } from './exec.js';
import { DockerNode } from './node.js';

/** One line of docker pull's progress stream. */
interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

function splitRef(ref: string): [string, string] {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
}

/** dockerode's GET /images/get (several images in one archive), which its type definitions lack. */
interface SavesImages {
  getImages(opts: { names: string[] }): Promise<NodeJS.ReadableStream>;
}

/** The Docker engine's image store. */
export class DockerImages implements ImageStore {
  constructor(
    private readonly client: DockerClient,
    private readonly containers: Containers,
    private readonly execs: Exec,
    /** How long an upload may go without a byte moving either way (tests shorten it). */
    private readonly stallMs = STREAM_STALL_MS,
  ) {}

  private get docker() {
    return this.client.docker;
  }

  get engine() {
    return { name: this.client.dialect.engine, cli: this.client.dialect.cli };
  }

  async info(name: string): Promise<ImageInfo | undefined> {
    try {
      const i = await this.client.call('inspect an image', () => this.docker.getImage(name).inspect());
      return {
        id: i.Id,
        tags: (i.RepoTags ?? []).map(this.client.dialect.shortName),
        sizeBytes: i.Size,
        created: i.Created,
        labels: i.Config?.Labels ?? {},
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async list(reference: string): Promise<ImageInfo[]> {
    const list = await this.client.call('list images', () =>
      this.docker.listImages({ filters: { reference: [reference] } }),
    );
    return list.map((i) => ({
      id: i.Id,
      tags: (i.RepoTags ?? []).map(this.client.dialect.shortName),
      sizeBytes: i.Size,
      created: new Date(i.Created * 1000).toISOString(),
      labels: i.Labels ?? {},
    }));
  }

  async remove(name: string): Promise<'removed' | 'absent'> {
    try {
      await this.client.call('remove an image', () => this.docker.getImage(name).remove({ force: true }));
      return 'removed';
    } catch (err) {
      if (statusOf(err) === 404) return 'absent';
      throw err;
    }
  }

  /** Loads an image archive (docker save / OCI layout tar) from a stream: POST /images/load. */
  async load(archive: Readable): Promise<void> {
    await this.upload('load an image', archive, (body, abortSignal) =>
      this.docker.loadImage(body, { quiet: true, abortSignal }),
    );
  }

  /** Imports a root filesystem tar as an image (docker import), with Dockerfile-style changes. */
  async importRootfs(rootfs: Readable, ref: string, changes: string[]): Promise<void> {
    const [repo, tag] = splitRef(ref);
    await this.upload('import a root filesystem', rootfs, (body, abortSignal) =>
      this.docker.importImage(body, { repo, tag, changes, abortSignal }),
    );
  }

  /**
   * Sends a stream to the engine and reads its progress answer. No fixed deadline fits a transfer
   * of any size: it is aborted once nothing has moved either way for a while, and an error of
   * the stream it reads from (a file that cannot be read) ends it too.
   */
  private async upload(
    what: string,
    source: Readable,
    send: (body: Readable, signal: AbortSignal) => Promise<unknown>,
  ): Promise<void> {
    const deadline = inactivityDeadline(this.stallMs);
    const body = new PassThrough();
    body.on('data', deadline.touch);
    // The reader's own failure (a file that cannot be read) is the one to report.
    let sourceError: unknown;
    const feeding = pipeline(source, body).catch((err: unknown) => {
      sourceError = err;
      throw err;
    });
    feeding.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    try {
      const res = (await send(body, deadline.signal)) as Readable;
      res.on('data', deadline.touch);
      await Promise.all([feeding, this.readProgress(res, what)]);
    } catch (err) {
      source.destroy();
      body.destroy();
      if (err instanceof MinilabError) throw err;
      if (sourceError) throw sourceError;
      if (deadline.fired()) {
        throw new MinilabError(
          'timeout',
          `the ${this.client.dialect.engine} stopped moving for ${formatMs(this.stallMs)} while trying to ${what}`,
          { hint: `${this.client.dialect.hint} (and has disk space)`, cause: err },
        );
      }
      throw err;
    } finally {
      deadline.stop();
    }
  }

  /**
   * Pulls an image from its registry (docker pull), reporting the bytes downloaded over all
   * layers. The engine reports most failures inside the progress stream, not as an HTTP error:
   * both become a MinilabError carrying the engine's own message.
   */
  async pull(ref: string, progress?: (detail: string) => void, timeoutMs = 30 * 60_000): Promise<void> {
    const engine = this.client.dialect.engine;
    const hint = `check that the ${engine} can reach the image's registry (network, proxy, credentials)`;
    const failed = (reason: string, kind: 'environment' | 'notFound' = 'environment', cause?: unknown) =>
      new MinilabError(kind, `the ${engine} could not pull ${ref}: ${reason}`, { hint, cause });
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.client.call('start pulling an image', () => this.docker.pull(ref));
    } catch (err) {
      if (err instanceof MinilabError) throw err;
      const e = err as DockerError;
      // dockerode's message is "(HTTP code 500) server error - <the engine's message>".
      throw failed(
        (e.json?.message ?? e.message ?? String(err)).replace(/^\(HTTP code \d+\)[^-]*- /, '').trim(),
        e.statusCode === 404 ? 'notFound' : undefined,
        err,
      );
    }
    const layers = new Map<string, { current: number; total: number }>();
    let lastReport = 0;
    const onEvent = (e: PullEvent) => {
      if (e.error) throw failed(e.errorDetail?.message ?? e.error);
      const detail = e.progressDetail;
      if (e.id && detail?.total) layers.set(e.id, { current: detail.current ?? 0, total: detail.total });
      const now = performance.now();
      if (!progress || now - lastReport < 500) return;
      lastReport = now;
      const sum = (k: 'current' | 'total') => [...layers.values()].reduce((n, l) => n + l[k], 0) / 1e6;
      if (layers.size > 0) progress(`${sum('current').toFixed(0)}/${sum('total').toFixed(0)} MB`);
      else if (e.status) progress(e.status);
    };
    const done = new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(failed(err.message, 'environment', err)) : resolve()),
        (e: PullEvent) => {
          try {
            onEvent(e);
          } catch (err) {
            reject(err);
          }
        },
      );
    });
    try {
      await withTimeout(done, timeoutMs, `the ${engine} to pull ${ref}`, hint);
    } finally {
      (stream as Readable).destroy();
    }
  }

  /**
   * Streams images out of the engine as one docker-save archive (several names of one image and
   * layers the images share are in it once).
   */
  async save(refs: string | string[]): Promise<Readable> {
    const names = typeof refs === 'string' ? [refs] : refs;
    return (await this.client.call(names.length > 1 ? 'save images' : 'save an image', () =>
      names.length === 1
        ? this.docker.getImage(names[0]!).get()
        : (this.docker as unknown as SavesImages).getImages({ names }),
    )) as unknown as Readable;
  }

  async builder(opts: {
    name: string;
    image: string;
    labels: Record<string, string>;
    binds?: string[];
  }): Promise<ImageBuilder> {
    const { containers } = this;
    await containers.remove(opts.name);
    await containers.createPlain({
      name: opts.name,
      image: opts.image,
      entrypoint: ['sleep', 'infinity'],
      labels: opts.labels,
      privileged: true,
      binds: opts.binds,
    });
    try {
      await containers.start(opts.name);
    } catch (err) {
      await containers.remove(opts.name);
      throw err;
    }
    const state = await containers.inspect(opts.name);
    if (!state) throw new MinilabError('unexpected', `build container ${opts.name} vanished`);
    return {
      node: new DockerNode(state, containers, this.execs),
      commit: (ref, changes) => containers.commit(opts.name, ...splitRef(ref), changes),
      remove: async () => {
        await containers.remove(opts.name);
      },
    };
  }

  private async readProgress(res: Readable, what: string): Promise<void> {
    let failure: string | undefined;
    // One JSON message a line; a line may arrive split across chunks, so the tail waits for the next.
    let partial = '';
    const take = (line: string) => {
      if (!line.trim()) return;
      try {
        const msg = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
        if (msg.error) failure = msg.errorDetail?.message ?? msg.error;
      } catch {
        // not JSON: progress text, which carries no error
      }
    };
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        const lines = (partial + chunk.toString('utf8')).split('\n');
        partial = lines.pop() ?? '';
        lines.forEach(take);
        cb();
      },
      final(cb) {
        take(partial);
        cb();
      },
    });
    await pipeline(res, sink);
    if (failure)
      throw new MinilabError(
        'environment',
        `the ${this.client.dialect.engine} could not ${what}: ${failure}`,
      );
  }
}
