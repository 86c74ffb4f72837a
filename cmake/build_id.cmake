# Writes OUT (a header) with the git commit the build is made from: "5d707df", "5d707df-dirty"
# for uncommitted changes, or "unknown" outside a git checkout (a release tarball). Run at every
# build by the attnlab_build_id target; the file is rewritten only when the commit changes, so
# only core/version.cpp recompiles.
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=7
                OUTPUT_VARIABLE commit ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown")
endif()
set(content "#define ATTNLAB_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
