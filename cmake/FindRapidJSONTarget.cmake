# RapidJSON 1.1.0 sets only RAPIDJSON_INCLUDE_DIRS; wrap it in courier::rapidjson.
find_path(COURIER_RAPIDJSON_INCLUDE_DIR rapidjson/reader.h PATH_SUFFIXES include)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(RapidJSONTarget REQUIRED_VARS COURIER_RAPIDJSON_INCLUDE_DIR)
if(RapidJSONTarget_FOUND AND NOT TARGET courier::rapidjson)
  add_library(courier::rapidjson INTERFACE IMPORTED)
  set_target_properties(courier::rapidjson PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${COURIER_RAPIDJSON_INCLUDE_DIR}")
endif()
mark_as_advanced(COURIER_RAPIDJSON_INCLUDE_DIR)
