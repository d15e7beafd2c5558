import { MinilabError } from '../errors.js';
import type { Provider } from './types.js';

/**
 * The provider for a driver. Each loads only when used (dockerode is not loaded by commands that
 * never talk to an engine).
 */
export async function connectProvider(driver: string, env: NodeJS.ProcessEnv): Promise<Provider> {
  switch (driver) {
    case 'docker': {
      const { DockerProvider } = await import('./docker/provider.js');
      return DockerProvider.connect(env);
    }
    default:
      throw new MinilabError('usage', `unknown driver "${driver}"`, {
        hint: 'use --driver docker',
      });
  }
}
