/**
 * `devmapper targets`: the target types the kernel has loaded, with their versions.
 * @packageDocumentation
 */
import { ExitCode, defineVerb } from '../verb';

/** `devmapper targets`. */
export const targets = defineVerb({
  name: 'targets',
  summary: 'List the target types the kernel has loaded, with their versions',
  usage: '',
  description: 'Text: one "TYPE vMAJOR.MINOR.PATCH" line each, in the kernel\'s order (as dmsetup targets).\nJSON: [{ "name": "linear", "version": [1, 4, 0] }, ...].',
  options: {},
  positionals: { min: 0, max: 0 },
  async run(ctx) {
    const list = ctx.syncClient().listTargets();
    if (ctx.global.json) ctx.out.json(list);
    else ctx.out.table([{ heading: 'Type' }, { heading: 'Version' }], list.map((t) => [t.name, `v${t.version.join('.')}`]), { headings: false });
    return ExitCode.ok;
  },
});
