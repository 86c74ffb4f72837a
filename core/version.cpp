// core/version.cpp — attn::version() and attn::commit() (attnlab/version.h). The only file that
// reads the generated build_id.h, so that a new commit recompiles this file alone.
#include <attnlab/version.h>

#include "build_id.h"  // generated at every build: ATTNLAB_COMMIT (cmake/build_id.cmake)

namespace attn {

const char* version() { return ATTNLAB_VERSION_STRING; }
const char* commit() { return ATTNLAB_COMMIT; }

}  // namespace attn
