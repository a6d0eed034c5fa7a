# mayfly_example_dns_lib: the DNS parsers and responder of the mayfly-dns
# example, as a static library for the program, its tests and its fuzzers.
# Included from examples/CMakeLists.txt and from tests/CMakeLists.txt (the
# fuzz preset builds no examples); the first include defines the target.
# MAYFLY_DNS_LIB_SOURCES lists its sources (the fuzzers build an
# instrumented copy).
set(MAYFLY_DNS_LIB_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/message.cpp
  ${CMAKE_CURRENT_LIST_DIR}/responder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/service.cpp
  ${CMAKE_CURRENT_LIST_DIR}/zone.cpp)
if(NOT TARGET mayfly_example_dns_lib)
  add_library(mayfly_example_dns_lib STATIC ${MAYFLY_DNS_LIB_SOURCES})
  # Example code: linked only to mayfly::mayfly, as a service would be.
  target_link_libraries(mayfly_example_dns_lib
    PUBLIC mayfly::mayfly
    PRIVATE mayfly_build_flags)
  target_include_directories(mayfly_example_dns_lib PUBLIC ${PROJECT_SOURCE_DIR})
endif()
