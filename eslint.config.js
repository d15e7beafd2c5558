import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const DOCKERODE = {
  name: 'dockerode',
  message: 'Only src/providers/docker/ talks to the Docker engine.',
  allowTypeImports: true,
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'images/', 'src/dashboard/web/dist/', '**/.work/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { paths: [DOCKERODE] }],
    },
  },
  {
    // Layers point one way: below the CLI nothing imports from it, and only the provider seam
    // (src/providers/index.ts) picks a provider's implementation.
    files: ['src/**/*.ts'],
    ignores: ['src/providers/**', 'src/cli/**', 'src/main.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [DOCKERODE],
          patterns: [
            { group: ['**/cli/*', '**/cli/**'], message: 'Code below the CLI does not import from src/cli.' },
            {
              group: ['**/providers/docker/*'],
              message: 'Use the Provider and Node interfaces (src/providers/types.ts).',
            },
          ],
        },
      ],
    },
  },
  {
    // The CLI too reaches a provider only through the seam.
    files: ['src/cli/**/*.ts', 'src/main.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [DOCKERODE],
          patterns: [
            {
              group: ['**/providers/docker/*'],
              message: 'Use the Provider and Node interfaces (src/providers/types.ts).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/providers/docker/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['scripts/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
