/**
 * `devmapper mknodes`: makes /dev/mapper agree with the kernel's device list.
 * @packageDocumentation
 */
import { ExitCode, defineVerb } from '../verb';

/** `devmapper mknodes`. */
export const mknodes = defineVerb({
  name: 'mknodes',
  summary: "Make /dev/mapper agree with the kernel's devices",
  usage: '',
  description: `Makes missing nodes, replaces nodes and symlinks that lead to another device or nowhere, and
removes those of names the kernel has no device of; /dev/mapper/control and other kinds of
entries are left alone. Prints what it did, "created NAME" and so on, a line each.
JSON: { "created": [...], "fixed": [...], "removed": [...], "skipped": [{ "name", "reason" }] }.`,
  options: {},
  positionals: { min: 0, max: 0 },
  async run(ctx) {
    const result = ctx.syncClient().mknodes();
    if (ctx.global.json) {
      ctx.out.json(result);
      return ExitCode.ok;
    }
    for (const name of result.created) ctx.out.line(`created ${name}`);
    for (const name of result.fixed) ctx.out.line(`fixed ${name}`);
    for (const name of result.removed) ctx.out.line(`removed ${name}`);
    for (const s of result.skipped) ctx.out.line(`skipped ${s.name}: ${s.reason}`);
    return ExitCode.ok;
  },
});
