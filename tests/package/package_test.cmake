# The installed package: the build installed into a scratch prefix, examples/cpp built against it with
# find_package(sieve) and, the same source, with pkg-config; both programs run on the bundled model and
# images, and their explanations must be the command line's, byte for byte.
#
# cmake -DBINARY_DIR=… -DSOURCE_DIR=… -DWORK_DIR=… -DCXX_COMPILER=… -DLIBDIR=… -DCLI=… -P package_test.cmake

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(model ${SOURCE_DIR}/examples/fashion_cnn.onnx)
set(images ${SOURCE_DIR}/examples/images)
file(REMOVE_RECURSE ${WORK_DIR})

run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
foreach(installed include/sieve/analyzer.hpp include/sieve/io/npy.hpp ${LIBDIR}/libsieve.a bin/sieve
        ${LIBDIR}/cmake/sieve/sieveConfig.cmake ${LIBDIR}/cmake/sieve/sieveConfigVersion.cmake
        ${LIBDIR}/cmake/sieve/sieveTargets.cmake ${LIBDIR}/pkgconfig/sieve.pc)
  if(NOT EXISTS ${prefix}/${installed})
    message(FATAL_ERROR "cmake --install did not install ${installed}")
  endif()
endforeach()

foreach(method gradient lrp.epsilon_plus)
  run(${CLI} explain ${model} ${images} -m ${method} --out ${WORK_DIR}/cli_${method}.npy)
endforeach()

# Runs one build of the example and compares what it wrote with the command line's.
function(check_example program out)
  run(${program} ${model} ${images} ${out})
  if(NOT run_output MATCHES "00_ankle_boot.png: class 9 \\(Ankle boot\\)")
    message(FATAL_ERROR "${program}: unexpected output\n${run_output}")
  endif()
  foreach(method gradient lrp.epsilon_plus)
    run(${CMAKE_COMMAND} -E compare_files ${out}/${method}.npy ${WORK_DIR}/cli_${method}.npy)
  endforeach()
endfunction()

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/cpp -B ${WORK_DIR}/build -G Ninja -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
check_example(${WORK_DIR}/build/explain_images ${WORK_DIR}/out_cmake)

find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
run(${PKG_CONFIG} --cflags --libs sieve)
separate_arguments(flags UNIX_COMMAND "${run_output}")
run(${CXX_COMPILER} -std=c++20 -O2 ${SOURCE_DIR}/examples/cpp/explain_images.cpp -o ${WORK_DIR}/explain_images_pc
    ${flags})
check_example(${WORK_DIR}/explain_images_pc ${WORK_DIR}/out_pkg_config)
