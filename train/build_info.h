// train/build_info.h — which attnlab build and which machine a run was made with. Runs record
// both (results.json) so that a report can tell when their times do not compare.
//
//   attnlab_build()        -> "0.1.0 (commit 5d707df)"   ("-dirty": uncommitted changes)
//   machine_description()  -> "laptop, Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz, 8 cores"
#pragma once
#include <string>

namespace attn {
std::string attnlab_build();
std::string machine_description();
}  // namespace attn
