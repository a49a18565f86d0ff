//! NAB scoring (work in progress).
