//! Search use cases: type, system and compartment searches, and the condition searches behind
//! conditional create, update and delete.

use ::search::{ParsedSearch, SearchRequest};
use fhir::{Issue, IssueCode};
use store::{SearchPage, SearchQuery, TotalMode};

use crate::resources::check_type;
use crate::{App, AppError};

/// A search as the caller received it.
#[derive(Debug, Clone, Default)]
pub struct SearchInput {
    /// `[T]` for `GET [T]`, empty for a system search.
    pub types: Vec<String>,
    /// The Patient id for `Patient/[id]/*`, `Patient/[id]/[T]` and `$everything`.
    pub compartment: Option<String>,
    /// Decoded query (or form) pairs in order.
    pub params: Vec<(String, String)>,
    /// `Prefer: handling=strict`.
    pub strict: bool,
}

/// What the search behind a conditional operation found.
#[derive(Debug)]
pub(crate) struct ConditionMatch {
    /// The parsed condition (re-checked by the store for conditional creates).
    pub query: SearchQuery,
    /// The id of the single match, if there is one.
    pub matched: Option<String>,
}

/// A page of results together with what the parser understood of the request.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    pub page: SearchPage,
    pub parsed: ParsedSearch,
}

impl App {
    /// Runs a search.
    ///
    /// # Errors
    /// `Invalid` for malformed parameters (and unknown ones under strict handling), `Unavailable`.
    pub async fn search(&self, input: &SearchInput) -> Result<SearchOutcome, AppError> {
        for resource_type in &input.types {
            check_type(resource_type)?;
        }
        let parsed = self.parse_search(input)?;
        let mut query = parsed.query.clone();
        self.viewer.restrict(&mut query);
        if let crate::Viewer::Patient(own) = &self.viewer {
            // A patient searches their own compartment only: another patient's id in the URL or
            // in a parameter finds nothing.
            match &query.compartment {
                Some(patient) if patient != own => query.filters.push(Vec::new()),
                _ => query.compartment = Some(own.clone()),
            }
        }
        if let crate::Viewer::Member(member) = &self.viewer
            && !self.scope_for_member(member, &mut query).await?
        {
            if let Some(patient) = crate::consent::single_patient(&query) {
                self.record_access(&patient, false);
            }
            // Nothing the member may see: an empty answer, as for data that does not exist.
            let page = SearchPage {
                matches: Vec::new(),
                included: Vec::new(),
                total: (query.total != TotalMode::None).then_some(0),
                next: None,
                previous: None,
            };
            return Ok(SearchOutcome { page, parsed });
        }
        let mut page = self.store.search(&query).await?;
        // Included resources are not matches: the conditions above did not choose them.
        let mut included = Vec::with_capacity(page.included.len());
        for resource in std::mem::take(&mut page.included) {
            if self.permits(&resource).await? {
                included.push(resource);
            }
        }
        page.included = included;
        self.record_shown(&page.matches);
        Ok(SearchOutcome { page, parsed })
    }

    /// Parses a search against the official parameters.
    fn parse_search(&self, input: &SearchInput) -> Result<ParsedSearch, AppError> {
        let mut params = input.params.clone();
        crate::identity::canonical_identifier_params(&mut params);
        let request = SearchRequest {
            types: &input.types,
            compartment: input.compartment.clone(),
            params: &params,
            strict: input.strict,
            default_count: self.settings.default_count,
            max_count: self.settings.max_count,
        };
        self.registry.parse(&request).map_err(|errors| {
            AppError::Invalid(
                errors
                    .into_iter()
                    .map(|error| Issue::error(IssueCode::Invalid, Some(error.param), error.message))
                    .collect(),
            )
        })
    }

    /// The strict query behind a conditional operation on `resource_type`.
    pub(crate) fn condition_query(
        &self,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Result<SearchQuery, AppError> {
        check_type(resource_type)?;
        if params.is_empty() {
            return Err(AppError::invalid(
                IssueCode::Required,
                None,
                "a conditional operation needs at least one search parameter",
            ));
        }
        let input = SearchInput {
            types: vec![resource_type.to_owned()],
            compartment: None,
            params: params.to_vec(),
            strict: true,
        };
        Ok(self.parse_search(&input)?.query)
    }

    /// Runs the search behind a conditional operation: no match, or the id of the one match.
    /// Several matches are an error, since a conditional operation must not guess.
    ///
    /// # Errors
    /// `Invalid` for a malformed condition, `PreconditionFailed` for several matches.
    pub(crate) async fn match_condition(
        &self,
        resource_type: &str,
        params: &[(String, String)],
    ) -> Result<ConditionMatch, AppError> {
        let query = self.condition_query(resource_type, params)?;
        let ids = self.match_ids(&query).await?;
        let matched = match ids.as_slice() {
            [] => None,
            [only] => Some(only.clone()),
            _ => {
                return Err(AppError::PreconditionFailed(
                    "the condition matches more than one resource".into(),
                ));
            }
        };
        Ok(ConditionMatch { query, matched })
    }

    /// Ids of at most two current matches of a condition query (two are enough to know it is
    /// ambiguous).
    async fn match_ids(&self, query: &SearchQuery) -> Result<Vec<String>, AppError> {
        let mut query = query.clone();
        query.count = 2;
        query.total = TotalMode::None;
        query.cursor = None;
        query.sort.clear();
        query.includes.clear();
        query.revincludes.clear();
        // On the primary: a replica's lag could hide the resource the write must find.
        let page = self.store.search_latest(&query).await?;
        Ok(page
            .matches
            .into_iter()
            .map(|resource| resource.id)
            .collect())
    }
}
