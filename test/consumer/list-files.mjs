// Copied into the consumer project and run there, so `typescript` is the project's own compiler.
//
// `node list-files.mjs a.json b.json …` prints, as JSON keyed by config, the files `tsc -p <config>
// --listFilesOnly` would list for each config: the program's source files, after the same checks
// (config, syntax and options errors fail it, as they fail tsc). One process for every config, and
// each declaration file is parsed once for all of them, instead of one tsc start per config.
import ts from 'typescript';

const cache = new Map();
let host;
const out = {};
for (const config of process.argv.slice(2)) {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    config,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => fail(config, [d]),
    },
  );
  if (!parsed) fail(config, []);
  if (parsed.errors.length > 0) fail(config, parsed.errors);
  if (!host) {
    host = ts.createCompilerHost(parsed.options);
    const read = host.getSourceFile.bind(host);
    host.getSourceFile = (fileName, version, ...rest) => {
      const key = `${fileName}\0${JSON.stringify(version)}`;
      if (!cache.has(key)) cache.set(key, read(fileName, version, ...rest));
      return cache.get(key);
    };
  }
  const program = ts.createProgram({
    rootNames: parsed.fileNames,
    options: parsed.options,
    host,
    projectReferences: parsed.projectReferences,
    configFileParsingDiagnostics: ts.getConfigFileParsingDiagnostics(parsed),
  });
  const diagnostics = [...program.getConfigFileParsingDiagnostics(), ...program.getSyntacticDiagnostics()];
  if (diagnostics.length === 0) diagnostics.push(...program.getOptionsDiagnostics());
  if (diagnostics.length > 0) fail(config, diagnostics);
  out[config] = program.getSourceFiles().map((f) => f.fileName);
}
console.log(JSON.stringify(out));

function fail(config, diagnostics) {
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => process.cwd(),
    getNewLine: () => '\n',
  });
  console.error(`${config}:\n${text}`);
  process.exit(1);
}
