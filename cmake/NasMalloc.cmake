# tcmalloc as the malloc of every program we build (nas-host, the tests, the benchmarks).
#
# Why: a training step frees and allocates activations of tens of MB. glibc's malloc returns blocks
# that large to the kernel and maps them anew, so every step faults all their pages in again (150,000
# page faults per NASNet-A Large step, 10% of its time in the kernel); tcmalloc keeps them mapped.
# Measured in README ("Benchmarks", the allocator): 1.10x to 1.14x the images/s at 0.90x the peak memory.
#
# Off (-DNAS_TCMALLOC=OFF) for sanitizer builds, which bring an allocator of their own, and for
# valgrind or heaptrack sessions.
option(NAS_TCMALLOC "Link every program against tcmalloc (Debian's libgoogle-perftools-dev)" ON)
if(NAS_TCMALLOC)
  find_library(NAS_TCMALLOC_LIBRARY tcmalloc_minimal)
  if(NOT NAS_TCMALLOC_LIBRARY)
    message(FATAL_ERROR "tcmalloc not found: install libgoogle-perftools-dev (scripts/setup.sh), "
                        "or configure with -DNAS_TCMALLOC=OFF to keep glibc's malloc")
  endif()
endif()

# The library goes into the executable itself: a program's own dependencies come before libc in symbol
# lookup (a shared library's would come after it, and libc's malloc would win). --no-as-needed keeps it
# although nothing in the program names it.
function(nas_use_tcmalloc target)
  if(NAS_TCMALLOC)
    target_link_libraries(${target} PRIVATE -Wl,--push-state,--no-as-needed ${NAS_TCMALLOC_LIBRARY} -Wl,--pop-state)
    target_compile_definitions(${target} PRIVATE NAS_TCMALLOC=1)
  endif()
endfunction()
