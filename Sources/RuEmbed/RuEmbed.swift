// The product for apps: one import gives the whole pipeline (see the DocC catalog,
// RuEmbed.docc). Programs that only tokenize or only read and write vector streams can
// depend on the smaller products RuTokenizer and RuVectors instead, without oneDNN.
@_exported import RuCore
@_exported import RuTokenizer
@_exported import RuVectors
@_exported import RuCompute
@_exported import RuSearch
@_exported import RuHub
@_exported import RuEncoder
