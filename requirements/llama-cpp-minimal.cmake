# Included after llama-cpp-python's project() (CMAKE_PROJECT_INCLUDE, set by the Makefile).
# llama-cpp-python forces LLAMA_BUILD_COMMON=ON into the cache, but its Python bindings load only
# libllama (and libmtmd, which LLAVA_BUILD=OFF drops): llama.cpp's "common" library (argument
# parsing, chat and JSON helpers for its command-line programs, ~50 C++ files) would be compiled
# and thrown away. A normal variable shadows that cache entry (CMake policy CMP0126), so it is skipped.
set(LLAMA_BUILD_COMMON OFF)
