# dnsproxy_bpf_skeleton(<name> <source.bpf.c>)
#
# Compiles a BPF C program with clang (-target bpf -O2 -g, BTF kept for CO-RE and for the
# skeleton) and generates `<name>.skel.h` with bpftool. Creates the INTERFACE target
# `<name>_skel`: link it and `#include "<name>.skel.h"`. The object is embedded in the skeleton,
# so nothing is loaded from a path at run time.
find_program(CLANG_BPF clang REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND gcc -print-multiarch OUTPUT_VARIABLE DNSPROXY_MULTIARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE)

function(dnsproxy_bpf_skeleton name source)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  get_filename_component(src_abs ${source} ABSOLUTE)
  get_filename_component(src_dir ${src_abs} DIRECTORY)
  file(GLOB bpf_headers ${src_dir}/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${CLANG_BPF} -target bpf -O2 -g -Wall -Werror
            -I/usr/include/${DNSPROXY_MULTIARCH} -I${CMAKE_SOURCE_DIR}
            -c ${src_abs} -o ${obj}
    DEPENDS ${src_abs} ${bpf_headers}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}"
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
