# Imported targets for the libraries sieve links that ship no usable CMake package on Debian 12; read
# by the build and by the installed sieveConfig.cmake, so both name the same targets.

# Debian's dnnl package config also demands the OpenCL SDK for its GPU runtime, which sieve does not
# use, so the CPU library is located directly.
if(NOT TARGET DNNL::dnnl)
  find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
  find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
  add_library(DNNL::dnnl UNKNOWN IMPORTED)
  set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION ${DNNL_LIBRARY} INTERFACE_INCLUDE_DIRECTORIES ${DNNL_INCLUDE_DIR})
endif()
# libjpeg-turbo's TurboJPEG interface reports decoding errors by return value (no longjmp through C++).
if(NOT TARGET TurboJPEG::turbojpeg)
  find_library(TURBOJPEG_LIBRARY NAMES turbojpeg REQUIRED)
  find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h REQUIRED)
  add_library(TurboJPEG::turbojpeg UNKNOWN IMPORTED)
  set_target_properties(TurboJPEG::turbojpeg PROPERTIES IMPORTED_LOCATION ${TURBOJPEG_LIBRARY} INTERFACE_INCLUDE_DIRECTORIES ${TURBOJPEG_INCLUDE_DIR})
endif()
