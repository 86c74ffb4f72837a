// apps/shell_docs.h — the bash completion script and the man page, generated from the command
// line's own definitions (the CLI11 app main() builds), so that neither can fall behind a flag.
//
//   attnlab --bash-completion > attnlab.bash    # then: source attnlab.bash
//   attnlab --man-page > attnlab.1              # then: man -l attnlab.1
// The build runs both after it links attnlab; `cmake --install` puts them in
// share/bash-completion/completions/attnlab and share/man/man1/attnlab.1.
#pragma once
#include <string>

namespace CLI {
class App;
}

namespace attn {

// A bash function `_attnlab` and its `complete` line: commands, subcommands (inspect grad),
// each command's flags, and the values of the flags that take one of a list — every --variant,
// --variants (comma-separated), --preset and --arch from the lists the parser checks against,
// and any option with a CLI::IsMember check; files elsewhere.
std::string bash_completion(const CLI::App& app);

// A man(7) page: NAME, SYNOPSIS, DESCRIPTION, a section per command with its --help text, EXIT
// STATUS, ENVIRONMENT and FILES. The help texts are set verbatim (.nf), escaped for roff.
std::string man_page(const CLI::App& app, const std::string& version);

}  // namespace attn
