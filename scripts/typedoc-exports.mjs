// A typedoc plugin (typedoc.json "plugin"): `npm run docs` fails when a name that an entry point
// exports is missing from the API reference. typedoc documents what it converts, but drops a
// reflection marked @internal or @hidden without a word, even when the package exports it: a user
// would then find a call in the .d.ts that the reference does not show. The names each entry
// point exports are taken from the TypeScript checker (the .d.ts's own view), and compared with
// the module's children once typedoc has removed what it hides.
import { resolve } from 'node:path';
import { Application, Converter } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  /** @type {{ file: string, id: number, names: string[] }[]} */
  let expected = [];

  app.converter.on(Converter.EVENT_END, (context) => {
    expected = [];
    const entries = app.options.getValue('entryPoints').map((e) => resolve(e));
    for (const program of context.programs) {
      const checker = program.getTypeChecker();
      for (const file of entries) {
        const source = program.getSourceFile(file);
        const symbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
        if (symbol === undefined) continue;
        const module = context.getReflectionFromSymbol(symbol);
        if (module === undefined) {
          app.logger.error(`${file}: no module in the API reference for this entry point`);
          continue;
        }
        expected.push({ file, id: module.id, names: checker.getExportsOfModule(symbol).map((s) => s.name) });
      }
    }
    const found = new Set(expected.map((e) => e.file));
    for (const file of entries) if (!found.has(file)) app.logger.error(`${file}: an entry point typedoc did not convert`);
  });

  app.on(Application.EVENT_VALIDATE_PROJECT, (project) => {
    for (const { file, id, names } of expected) {
      const module = project.getReflectionById(id);
      if (module === undefined) {
        app.logger.error(`${file}: its module was removed from the API reference`);
        continue;
      }
      for (const name of names) {
        if (module.getChildByName([name]) === undefined) {
          app.logger.error(`${module.name} exports ${name}, which the API reference leaves out (marked @internal or @hidden?)`);
        }
      }
    }
  });
}
