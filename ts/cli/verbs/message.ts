/**
 * `devmapper message`: sends a target message (DM_TARGET_MSG) and prints its answer, if any.
 * @packageDocumentation
 */
import { oneDevice, SELECT_OPTIONS, wholeNumber } from '../args';
import { ExitCode, defineVerb } from '../verb';

/** `devmapper message`. */
export const message = defineVerb({
  name: 'message',
  summary: 'Send a message to the target at a sector of a device, print its answer',
  usage: 'NAME SECTOR MESSAGE...',
  description: `The words of MESSAGE are joined by single spaces (a word that starts with "-" goes after
"--"). The message goes with DM_SECURE_DATA (it may carry a key: crypt's "key set"). The answer,
when the target gives one, is printed as it came. JSON: { "output": TEXT | null }.`,
  options: { ...SELECT_OPTIONS },
  positionals: { min: 2, max: Infinity },
  async run(ctx) {
    const { id, rest } = oneDevice(ctx, ctx.options, { min: 2, max: Infinity });
    const [sectorText, ...words] = rest;
    const sector = wholeNumber('SECTOR', sectorText ?? '', ctx.verb.name);
    const text = words.join(' ');
    if (text.trim() === '') throw ctx.usageError('the MESSAGE is empty');
    const output = ctx.syncClient().message(id, text, { sector, secure: true });
    if (ctx.global.json) ctx.out.json({ output: output ?? null });
    else if (output !== undefined && output !== '') ctx.out.write(output.endsWith('\n') ? output : `${output}\n`);
    return ExitCode.ok;
  },
});
