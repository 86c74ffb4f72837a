#!/bin/sh
# tests/lint.sh SOURCE_DIR — the "one rule for each thing" the code keeps, checked in its text:
#   - a backward reaches an input's gradient only through grad_dst (autograd/tape.h): no other
#     helper exists, and ops read no gradient but their output's (e.out->grad);
#   - the architecture is a type: no name compared, no cast to a concrete model, outside
#     models/arch.cpp (the one parser) and the factory in models/model.cpp;
#   - metrics.csv and dynamics.csv are read and written by train/run_logs.cpp alone: no CSV cell
#     taken by column number in the reports;
#   - gnuplot runs only from train/plot.cpp;
#   - a `parallel for simd`'s threshold is `if (parallel : ...)`: a bare if clause applies to the
#     simd construct too (OpenMP 5.0), and where it is false GCC runs the scalar loop.
# Prints each breach as file:line and exits 1 if there is one.
set -u
cd "$1" || exit 2
# Each check ends a pipeline, which runs in a subshell: a breach is counted in a file, not in a
# variable the subshell's exit would lose.
found=$(mktemp) || exit 2
trap 'rm -f "$found"' EXIT
breach() {  # breach WHAT: reads grep -n output on stdin
  while IFS= read -r line; do echo "lint: $1: $line"; echo >> "$found"; done
}
src="core autograd nn models data train apps examples"
grep -rnE '\b(grad_of|add_to_grad|pass_grad)\b' $src --include=*.cpp --include=*.h \
  | breach "a gradient helper other than grad_dst"
grep -nE -- '->grad\b' autograd/ops_*.cpp | grep -vE 'e\.out->grad|requires_grad' \
  | breach "an op touching a gradient buffer other than through grad_dst"
grep -rnE '(==|!=) *"(seq2seq|lm|mlm)"|"(seq2seq|lm|mlm)" *(==|!=)' $src --include=*.cpp --include=*.h \
  | breach "an architecture compared by name"
grep -rnE 'dynamic_cast<[^>]*(Transformer|LanguageModel|MaskedLM)' $src --include=*.cpp --include=*.h \
  | breach "a cast to a concrete model"
grep -rnE 'read_csv\(' train apps --include=*.cpp | grep -v '^train/run_logs.cpp' \
  | breach "a CSV read outside train/run_logs.cpp"
grep -nE '\]\[[0-9]+\]' train/report.cpp train/frontier.cpp \
  | breach "a CSV cell taken by column number"
grep -rnE 'std::system\(' train apps --include=*.cpp | grep -v '^train/plot.cpp' | grep -v 'command -v' \
  | breach "a shell command outside train/plot.cpp"
grep -rnE 'pragma omp .*simd.*\bif *\(' $src bench --include=*.cpp --include=*.h \
  | grep -vE 'if *\( *(parallel|simd) *:' \
  | breach "a bare if clause on a simd loop (write if (parallel : ...))"
[ -s "$found" ] && exit 1
exit 0
