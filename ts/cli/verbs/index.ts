/**
 * The verbs of the `devmapper` command, in the order `devmapper --help` lists them. A new verb
 * is one module under this folder, exporting a `Verb` (see ../verb.ts), added to `VERBS`.
 * @packageDocumentation
 */
import { GLOBAL_OPTION_NAMES, type Verb } from '../verb';
import { info } from './info';
import { clear, create, load, reload, resume, suspend } from './lifecycle';
import { ls } from './ls';
import { message } from './message';
import { mknodes } from './mknodes';
import { remove, removeAll } from './remove';
import { rename } from './rename';
import { deps, table } from './table';
import { targets } from './targets';
import { loop } from './loop';
import { demo, sandbox } from './sandbox';
import { stats } from './stats';
import { status } from './status';
import { version } from './version';
import { wait, watch } from './wait';
import { waitSync } from './wait-sync';

/** Every verb. */
export const VERBS: readonly Verb[] = [
  ls,
  info,
  table,
  deps,
  create,
  load,
  reload,
  suspend,
  resume,
  clear,
  message,
  rename,
  remove,
  removeAll,
  mknodes,
  targets,
  version,
  status,
  wait,
  watch,
  waitSync,
  stats,
  loop,
  sandbox,
  demo,
];

/** The verb named `name` (or one of its aliases). */
export function findVerb(name: string): Verb | undefined {
  return VERBS.find((v) => v.name === name || (v.aliases ?? []).includes(name));
}

/**
 * Problems of the registry: duplicate names, verbs that declare a global option, shorts used
 * twice. Empty when all is well (a unit test checks it).
 */
export function registryProblems(verbs: readonly Verb[] = VERBS): string[] {
  const problems: string[] = [];
  const names = new Set<string>(['help']);
  for (const verb of verbs) {
    for (const name of [verb.name, ...(verb.aliases ?? [])]) {
      if (names.has(name)) problems.push(`verb name ${name} is used twice`);
      names.add(name);
    }
    const shorts = new Set<string>(['h']);
    for (const [option, spec] of Object.entries(verb.options)) {
      if (GLOBAL_OPTION_NAMES.includes(option)) problems.push(`${verb.name} declares the global option --${option}`);
      if (spec.short !== undefined) {
        if (shorts.has(spec.short)) problems.push(`${verb.name}: -${spec.short} is used twice`);
        shorts.add(spec.short);
      }
    }
    if (verb.positionals.min < 0 || verb.positionals.max < verb.positionals.min) problems.push(`${verb.name}: bad arity`);
  }
  return problems;
}
