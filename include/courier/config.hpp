// courier: configuration macros shared by every header.
#pragma once

// Non-template functions are marked COURIER_DECL. Today they are all inline
// (header-only); the macro leaves room for an optional separately compiled
// build later, as Asio's ASIO_DECL and Beast's BOOST_BEAST_DECL do.
#ifndef COURIER_DECL
#define COURIER_DECL inline
#endif

#define COURIER_VERSION_MAJOR 0
#define COURIER_VERSION_MINOR 1
#define COURIER_PROTOCOL_VERSION 1
