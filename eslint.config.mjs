// `npm run lint`: eslint with typescript-eslint's type-checked rules over the TypeScript (one
// program, tsconfig.test.json, which holds both ts/ and test/), and eslint's recommended rules
// over the JavaScript (CommonJS scripts, examples, benchmarks and test fixtures run by Node).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'build/', 'build-*/', 'docs/', 'node_modules/', 'prebuilds/', 'fuzz/', 'binding.d.ts', 'test/fixtures/corpus/'] },
  {
    files: ['ts/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Numbers and booleans print as the kernel reads them (table and message text is
      // built from them); only objects, nullish values and the like are refused.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowAny: false, allowNullish: false, allowRegExp: false, allowNever: false, allowArray: false }],
      // `() => void` shorthands (callbacks, `.then(() => done())`) are idiomatic and clear.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    // The library checks at run time what its types already promise, because JavaScript callers
    // (and kernel answers) are not bound by them: "Bad input gets a clear typed error". Such
    // checks, and flags that change across an await (`this.closing`, `signal.aborted`), are
    // exactly what no-unnecessary-condition reports as dead; in the tests it stays on.
    files: ['ts/**/*.ts'],
    rules: { '@typescript-eslint/no-unnecessary-condition': 'off' },
  },
  {
    // A verb's run() is async by the Verb interface whether or not it awaits: a verb that runs
    // on the synchronous client throws inside it, and its throw reaches the framework as the
    // rejection every verb's failure is.
    files: ['ts/cli/verbs/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    // In a test, a value that is missing where text is built (a regex group, `row?.raw`) shows
    // as "undefined" in an expected string or a failure message, which is what it should say.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true, allowAny: false, allowRegExp: false, allowNever: false, allowArray: false }],
    },
  },
  {
    files: ['**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
  },
  {
    files: ['**/*.test.js'],
    languageOptions: { globals: { ...globals.mocha } },
  },
  {
    files: ['**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
  },
);
