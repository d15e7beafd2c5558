import { DockerProvider } from '../../src/providers/docker/provider.js';
import { connect } from '../helpers/engine.js';
import { engineApiCases } from '../helpers/engine-api-cases.js';

engineApiCases('docker', async () => {
  const engine = await connect();
  return { engine, provider: new DockerProvider(engine) };
});
