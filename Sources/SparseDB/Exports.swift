// The public types defined below the facade: `SparseVector` and `SparseDBError` live in
// SparseDBCore so that every layer can use them; host programs see them through `import SparseDB`.
@_exported import struct SparseDBCore.SparseVector
@_exported import struct SparseDBCore.SparseDBError
