# FindCAF.cmake -- locates CAF 0.17 as installed by Debian's libcaf-dev, which
# ships headers and shared libraries but no CMake package.
#
# Components: core (default), io, openssl. Defines the imported targets CAF::core and
# CAF::io, and CAF_FOUND / CAF_<component>_FOUND.
find_path(CAF_INCLUDE_DIR caf/all.hpp)
set(_mayfly_caf_components ${CAF_FIND_COMPONENTS})
if(NOT _mayfly_caf_components)
  set(_mayfly_caf_components core)
endif()
foreach(_comp IN LISTS _mayfly_caf_components)
  find_library(CAF_${_comp}_LIBRARY NAMES caf_${_comp})
  if(CAF_${_comp}_LIBRARY AND CAF_INCLUDE_DIR)
    set(CAF_${_comp}_FOUND TRUE)
    if(NOT TARGET CAF::${_comp})
      add_library(CAF::${_comp} UNKNOWN IMPORTED)
      set_target_properties(CAF::${_comp} PROPERTIES
        IMPORTED_LOCATION "${CAF_${_comp}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}")
    endif()
  endif()
endforeach()
if(TARGET CAF::io AND TARGET CAF::core)
  set_property(TARGET CAF::io APPEND PROPERTY INTERFACE_LINK_LIBRARIES CAF::core)
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF REQUIRED_VARS CAF_INCLUDE_DIR
                                  HANDLE_COMPONENTS)
mark_as_advanced(CAF_INCLUDE_DIR)
unset(_mayfly_caf_components)
