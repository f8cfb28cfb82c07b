/* The files domain's outcome table (files.h): its own, so the deciders
 * and their tests link without the domain's registration. */
#include "files/files.h"

const struct es_outcome files_outcomes[] = {FILES_OUTCOME_MAP(ES_OUTCOME_ROW, FILES)};
